-- Ledger kinds for refunds, debts and account merges (sql/schema/14_purchases.sql). A file
-- of its own: a new enum value cannot be used in the transaction that adds it.

alter type public.ledger_kind add value 'clawback';
alter type public.ledger_kind add value 'debt_settle';
alter type public.ledger_kind add value 'merge_out';
alter type public.ledger_kind add value 'merge_in';
