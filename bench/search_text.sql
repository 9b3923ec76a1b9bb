-- Names and descriptions an analyst would search, laid over the benchmark dataset
-- (bench/generate.py writes "Model 01-001", "input_01" and no descriptions): bench/search.sh.
-- Deterministic; every organization gets the same vocabulary, so a query's work is the same in
-- each and the tables' sizes grow with --scale.

-- 25 models per organization: 5 regions x 5 lines of business.
WITH numbered AS (
    SELECT id, row_number() OVER (PARTITION BY organization_id ORDER BY name) - 1 AS n
    FROM financial_models
)
UPDATE financial_models m
SET name = (ARRAY['EMEA', 'North America', 'APAC', 'LATAM', 'Nordics'])[1 + x.n % 5] || ' '
           || (ARRAY['SaaS', 'Retail', 'Services', 'Hardware', 'Marketplace'])[1 + (x.n / 5) % 5]
           || ' plan ' || (2025 + x.n / 25),
    description = (ARRAY[
        'Monthly P&L: revenue, gross margin, headcount and opex by department.',
        'Store roll-out with rent, staffing and contribution per location.',
        'Three-year plan with hiring, pricing and churn assumptions.',
        'Board budget; actuals through last quarter, forecast after.',
        'Cash flow and runway under the current financing plan.'])[1 + x.n % 5]
FROM numbered x
WHERE m.id = x.id;

-- Four scenarios per model: Base, Upside, Downside and a named variant.
WITH numbered AS (
    SELECT id, row_number() OVER (ORDER BY model_id) - 1 AS n FROM scenarios WHERE kind = 'CUSTOM'
)
UPDATE scenarios s
SET name = (ARRAY['Downside – hiring freeze', 'Price increase 5%', 'New market entry',
                  'Churn spike', 'Cost_cutting programme'])[1 + x.n % 5],
    description = (ARRAY['Downside with no new hires from Q3 and delayed marketing spend.',
                         'List prices up 5% in January; churn up one point.',
                         'Launch in a second region with its own sales team.',
                         'Churn doubles for two quarters, then recovers.',
                         'Opex cut by 10%: fewer contractors, lower rent.'])[1 + x.n % 5]
FROM numbered x
WHERE s.id = x.id;
UPDATE scenarios SET description = 'Budget as approved by the board.' WHERE kind = 'BASE';
UPDATE scenarios SET description = 'Faster growth, lower churn, earlier hiring.' WHERE kind = 'UPSIDE';
UPDATE scenarios SET description = 'Slower growth, higher churn, hiring delayed.' WHERE kind = 'DOWNSIDE';

-- The 20 metrics of each model: input_01..input_20 become a finance vocabulary.
WITH vocab(k, key, name, description) AS (VALUES
    (1, 'revenue', 'Revenue', 'Recognised revenue for the period.'),
    (2, 'cogs', 'Cost of goods sold', 'Hosting, support and third-party costs.'),
    (3, 'gross_margin', 'Gross margin', 'Revenue less cost of goods sold, as a share of revenue.'),
    (4, 'opex', 'Operating expenses', 'Sales, marketing, R&D and G&A.'),
    (5, 'payroll', 'Payroll', 'Salaries, bonuses and employer taxes.'),
    (6, 'headcount', 'Headcount', 'Full-time employees at period end, from the hiring plan.'),
    (7, 'hiring_plan', 'Hiring plan', 'New hires per period by department.'),
    (8, 'churn_rate', 'Churn rate', 'Share of customers lost per period.'),
    (9, 'arr', 'Annual recurring revenue', 'Contracted recurring revenue, annualised.'),
    (10, 'mrr', 'Monthly recurring revenue', NULL),
    (11, 'cac', 'Customer acquisition cost', 'Sales and marketing spend per new customer.'),
    (12, 'ltv', 'Customer lifetime value', NULL),
    (13, 'ebitda', 'EBITDA', 'Earnings before interest, taxes, depreciation and amortisation.'),
    (14, 'capex', 'Capital expenditure', NULL),
    (15, 'rent', 'Rent', 'Office and store rent.'),
    (16, 'marketing_spend', 'Marketing spend', 'Paid acquisition, events and brand.'),
    (17, 'sales_commissions', 'Sales commissions', NULL),
    (18, 'cash_balance', 'Cash balance', 'Cash at period end.'),
    (19, 'deferred_revenue', 'Deferred revenue', 'Billed but not yet recognised.'),
    (20, 'accounts_receivable', 'Accounts receivable', NULL))
UPDATE metrics x
SET key = v.key, name = v.name, description = v.description
FROM vocab v
WHERE x.key = 'input_' || lpad(v.k::text, 2, '0');

-- Eight parameters per model.
INSERT INTO parameters (model_id, key, name, unit, default_value)
SELECT m.id, p.key, p.name, p.unit, p.value
FROM financial_models m
CROSS JOIN (VALUES
    ('revenue_growth', 'Revenue growth rate', 'PERCENT', 0.04),
    ('churn', 'Monthly churn', 'PERCENT', 0.02),
    ('tax_rate', 'Tax rate', 'PERCENT', 0.25),
    ('discount_rate', 'Discount rate', 'PERCENT', 0.1),
    ('hires_per_month', 'Hires per month', 'NUMBER', 3),
    ('price_increase', 'Price increase', 'PERCENT', 0.05),
    ('cogs_ratio', 'COGS ratio', 'RATIO', 0.3),
    ('opex_growth', 'Opex growth', 'PERCENT', 0.01)) AS p(key, name, unit, value);

ANALYZE financial_models, scenarios, metrics, parameters;
