-- Verification emails asked for per address, from every account, for the hourly per-recipient
-- cap: many accounts naming one address must not make the service mail it again and again.
-- Keyed by a digest of the address, so no address is stored here; rows older than the hour are
-- purged by the maintenance job.
CREATE TABLE verification_recipients (
    id bigint GENERATED ALWAYS AS IDENTITY,
    address_digest bytea NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT verification_recipients_pkey PRIMARY KEY (id)
);

CREATE INDEX verification_recipients_address_idx ON verification_recipients (address_digest, requested_at);
