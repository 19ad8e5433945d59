-- Emails are stored in their canonical form (shillings_proto.fields.email_key: NFKC, case
-- folding, NFKC), so the existing UNIQUE keys on users.email and credentials.email refuse
-- lookalikes. The Python step of this migration (migrations/steps.py) rewrites existing
-- emails to that form; an account it cannot rewrite (its canonical email belongs to another
-- account, or it holds a refused character) is left as it is and listed here for an operator.
-- Never merged: both accounts, their balances and their history stay.

CREATE TABLE IF NOT EXISTS identity_review (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    user_id BIGINT UNSIGNED NOT NULL,
    field VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    value VARCHAR(254) NOT NULL,
    problem ENUM('email_collision', 'invalid_email', 'forbidden_character') NOT NULL,
    conflicts_with BIGINT UNSIGNED NULL,
    found_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY identity_review_user_field (user_id, field)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
