-- Run once when the PostgreSQL volume is created: the agent's read-only monitoring role.
CREATE ROLE didban LOGIN PASSWORD 'didban' IN ROLE pg_monitor;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
