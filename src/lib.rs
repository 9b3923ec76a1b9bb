//! FinVision API.
