-- Change keys come from the tables a check reads, not from each write remembering to name
-- them: a trigger on every such table notes the key of each row written. At commit the
-- writer moves the noted keys into change_log under the next revision (see 0002), inside the
-- same transaction, so a rolled-back write notes nothing and no write path can forget one.
-- Rows noted here never outlive their transaction; concurrent writers do not see (or block
-- on) each other's, as they are uncommitted until moved and deleted.
CREATE TABLE change_pending (
    seq     BIGSERIAL PRIMARY KEY,
    kind    TEXT NOT NULL CHECK (kind IN ('ACCOUNT', 'MEMBER', 'PERSON')),
    icn     TEXT,
    web_id  TEXT
);

-- Status and contracts of an account: every check on it.
CREATE FUNCTION note_account_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO change_pending (kind, icn) VALUES ('ACCOUNT', OLD.icn);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO change_pending (kind, icn) VALUES ('ACCOUNT', NEW.icn);
    END IF;
    RETURN NULL;
END $$;

-- A membership or request of one person on one account.
CREATE FUNCTION note_member_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO change_pending (kind, icn, web_id) VALUES ('MEMBER', OLD.icn, OLD.web_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO change_pending (kind, icn, web_id) VALUES ('MEMBER', NEW.icn, NEW.web_id);
    END IF;
    RETURN NULL;
END $$;

-- A person's email verification: every check of theirs.
CREATE FUNCTION note_person_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO change_pending (kind, web_id) VALUES ('PERSON', OLD.web_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO change_pending (kind, web_id) VALUES ('PERSON', NEW.web_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER accounts_change AFTER INSERT OR UPDATE OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION note_account_change();
CREATE TRIGGER contracts_change AFTER INSERT OR UPDATE OR DELETE ON contracts
    FOR EACH ROW EXECUTE FUNCTION note_account_change();
CREATE TRIGGER memberships_change AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION note_member_change();
CREATE TRIGGER access_requests_change AFTER INSERT OR UPDATE OR DELETE ON access_requests
    FOR EACH ROW EXECUTE FUNCTION note_member_change();
-- Checks read only whether a person's address is verified: a new name is no change to them.
CREATE TRIGGER persons_change_ins_del AFTER INSERT OR DELETE ON persons
    FOR EACH ROW EXECUTE FUNCTION note_person_change();
CREATE TRIGGER persons_change_upd AFTER UPDATE ON persons
    FOR EACH ROW WHEN (OLD.email_verified_at IS DISTINCT FROM NEW.email_verified_at)
    EXECUTE FUNCTION note_person_change();
