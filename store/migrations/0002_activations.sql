-- Contact methods and whether their owner confirmed them. A method is keyed
-- by a fingerprint of what it is (its type and address or robot config):
-- a changed method is a new key, pending again. `token_sha256` is the
-- SHA-256 (hex) of the single-use activation link's token, NULL once used.
CREATE TABLE activations (
    contact         TEXT    NOT NULL,
    method_key      TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'active')),
    token_sha256    TEXT,
    expires_at_ms   INTEGER,
    sent_at_ms      INTEGER NOT NULL,
    activated_at_ms INTEGER,
    activated_by    TEXT,
    PRIMARY KEY (contact, method_key)
) STRICT;

CREATE UNIQUE INDEX activations_token ON activations (token_sha256)
    WHERE token_sha256 IS NOT NULL;
