-- Holds, refunds and the event outbox (SPEC §6, §7).
-- A hold reserves part of its payer's balance: a user's `held` is the sum of their holds in
-- state 'held' whose expires_at is still ahead (expiry is exact without the sweep), and
-- `available` = balance - held. Captures and refunds are transactions like payments, naming
-- their hold (hold_id) or original (refund_of); a payment or capture counts what has been
-- refunded of it (refunded_amount, never above its amount).
-- Events are written in the transaction of the change they describe (the outbox); the
-- webhook workers fan each one out to its user's endpoints and set `dispatched`.
-- IF [NOT] EXISTS everywhere: a run interrupted between statements is taken up again.

CREATE TABLE IF NOT EXISTS holds (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    hold_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    payer_id BIGINT UNSIGNED NOT NULL,
    payer_email VARCHAR(254) NOT NULL,
    receiver_id BIGINT UNSIGNED NOT NULL,
    receiver_email VARCHAR(254) NOT NULL,
    amount BIGINT NOT NULL,
    captured_amount BIGINT NOT NULL DEFAULT 0,
    state ENUM('held', 'captured', 'voided', 'expired') NOT NULL DEFAULT 'held',
    expires_at DATETIME(6) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY holds_public_id (hold_id),
    KEY holds_payer_active (payer_id, state, expires_at),
    KEY holds_payer (payer_id, id),
    KEY holds_receiver (receiver_id, id),
    KEY holds_sweep (state, expires_at),
    CONSTRAINT holds_payer_fk FOREIGN KEY (payer_id) REFERENCES users (user_id),
    CONSTRAINT holds_receiver_fk FOREIGN KEY (receiver_id) REFERENCES users (user_id),
    CONSTRAINT holds_amount_range CHECK (amount > 0 AND amount <= 100000000),
    CONSTRAINT holds_captured_range CHECK (
        captured_amount >= 0 AND captured_amount <= amount
        AND (captured_amount = 0 OR state = 'captured')
    ),
    CONSTRAINT holds_parties CHECK (payer_id <> receiver_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

ALTER TABLE transactions
    DROP CONSTRAINT IF EXISTS transactions_kind_parties;

ALTER TABLE transactions
    MODIFY kind ENUM('payment', 'topup', 'capture', 'refund') NOT NULL,
    ADD COLUMN IF NOT EXISTS hold_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NULL,
    ADD COLUMN IF NOT EXISTS refund_of CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NULL,
    ADD COLUMN IF NOT EXISTS refunded_amount BIGINT NOT NULL DEFAULT 0,
    ADD KEY IF NOT EXISTS transactions_hold (hold_id),
    ADD KEY IF NOT EXISTS transactions_refund_of (refund_of);

ALTER TABLE transactions
    ADD CONSTRAINT IF NOT EXISTS transactions_kind_parties CHECK (
        (kind = 'topup' AND sender_id IS NULL AND sender_email IS NULL
            AND hold_id IS NULL AND refund_of IS NULL)
        OR (kind = 'payment' AND sender_id IS NOT NULL AND sender_id <> receiver_id
            AND hold_id IS NULL AND refund_of IS NULL)
        OR (kind = 'capture' AND sender_id IS NOT NULL AND sender_id <> receiver_id
            AND hold_id IS NOT NULL AND refund_of IS NULL)
        OR (kind = 'refund' AND sender_id IS NOT NULL AND sender_id <> receiver_id
            AND hold_id IS NULL AND refund_of IS NOT NULL)
    ),
    ADD CONSTRAINT IF NOT EXISTS transactions_refunded_range CHECK (
        refunded_amount >= 0 AND refunded_amount <= amount
        AND (refunded_amount = 0 OR kind IN ('payment', 'capture'))
    );

ALTER TABLE idempotency_keys
    ADD COLUMN IF NOT EXISTS hold_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NULL;

CREATE TABLE IF NOT EXISTS events (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    event_id CHAR(40) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id BIGINT UNSIGNED NOT NULL,
    type VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    data TEXT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    dispatched TINYINT(1) NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    UNIQUE KEY events_public_id (event_id),
    KEY events_user (user_id, id),
    KEY events_user_type (user_id, type, id),
    KEY events_undispatched (dispatched, id),
    CONSTRAINT events_user_fk FOREIGN KEY (user_id) REFERENCES users (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
