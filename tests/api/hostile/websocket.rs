//! Hostile input: websocket.
