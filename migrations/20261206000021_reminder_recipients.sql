-- The address each reminder went to, so that the per-recipient cap counts every account that sent
-- to it: an address can move between accounts (an email change, a new account), the history stays.
ALTER TABLE reminder_deliveries ADD COLUMN recipient text;

-- The reminder caps count sends in the last hour, per account and per address.
CREATE INDEX reminder_deliveries_user_sent_idx ON reminder_deliveries (user_id, sent_at)
    WHERE sent_at IS NOT NULL;
CREATE INDEX reminder_deliveries_recipient_sent_idx ON reminder_deliveries (recipient, sent_at)
    WHERE sent_at IS NOT NULL;
