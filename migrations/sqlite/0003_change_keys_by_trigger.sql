-- Change keys come from the tables a check reads, not from each write remembering to name
-- them: a trigger on every such table notes the key of each row written. At commit the
-- writer moves the noted keys into change_log under the next revision (see 0002), inside the
-- same transaction, so a rolled-back write notes nothing and no write path can forget one.
-- SQLite has one writer at a time, so the table holds only the current writer's keys.
CREATE TABLE change_pending (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL CHECK (kind IN ('ACCOUNT', 'MEMBER', 'PERSON')),
    icn     TEXT,
    web_id  TEXT
);

-- Status and contracts of an account: every check on it.
CREATE TRIGGER accounts_change_ins AFTER INSERT ON accounts BEGIN
    INSERT INTO change_pending (kind, icn) VALUES ('ACCOUNT', NEW.icn);
END;
CREATE TRIGGER accounts_change_upd AFTER UPDATE ON accounts BEGIN
    INSERT INTO change_pending (kind, icn) VALUES ('ACCOUNT', OLD.icn);
    INSERT INTO change_pending (kind, icn) VALUES ('ACCOUNT', NEW.icn);
END;
CREATE TRIGGER accounts_change_del AFTER DELETE ON accounts BEGIN
    INSERT INTO change_pending (kind, icn) VALUES ('ACCOUNT', OLD.icn);
END;

CREATE TRIGGER contracts_change_ins AFTER INSERT ON contracts BEGIN
    INSERT INTO change_pending (kind, icn) VALUES ('ACCOUNT', NEW.icn);
END;
CREATE TRIGGER contracts_change_upd AFTER UPDATE ON contracts BEGIN
    INSERT INTO change_pending (kind, icn) VALUES ('ACCOUNT', OLD.icn);
    INSERT INTO change_pending (kind, icn) VALUES ('ACCOUNT', NEW.icn);
END;
CREATE TRIGGER contracts_change_del AFTER DELETE ON contracts BEGIN
    INSERT INTO change_pending (kind, icn) VALUES ('ACCOUNT', OLD.icn);
END;

-- A membership or request of one person on one account.
CREATE TRIGGER memberships_change_ins AFTER INSERT ON memberships BEGIN
    INSERT INTO change_pending (kind, icn, web_id) VALUES ('MEMBER', NEW.icn, NEW.web_id);
END;
CREATE TRIGGER memberships_change_upd AFTER UPDATE ON memberships BEGIN
    INSERT INTO change_pending (kind, icn, web_id) VALUES ('MEMBER', OLD.icn, OLD.web_id);
    INSERT INTO change_pending (kind, icn, web_id) VALUES ('MEMBER', NEW.icn, NEW.web_id);
END;
CREATE TRIGGER memberships_change_del AFTER DELETE ON memberships BEGIN
    INSERT INTO change_pending (kind, icn, web_id) VALUES ('MEMBER', OLD.icn, OLD.web_id);
END;

CREATE TRIGGER access_requests_change_ins AFTER INSERT ON access_requests BEGIN
    INSERT INTO change_pending (kind, icn, web_id) VALUES ('MEMBER', NEW.icn, NEW.web_id);
END;
CREATE TRIGGER access_requests_change_upd AFTER UPDATE ON access_requests BEGIN
    INSERT INTO change_pending (kind, icn, web_id) VALUES ('MEMBER', OLD.icn, OLD.web_id);
    INSERT INTO change_pending (kind, icn, web_id) VALUES ('MEMBER', NEW.icn, NEW.web_id);
END;
CREATE TRIGGER access_requests_change_del AFTER DELETE ON access_requests BEGIN
    INSERT INTO change_pending (kind, icn, web_id) VALUES ('MEMBER', OLD.icn, OLD.web_id);
END;

-- Checks read only whether a person's address is verified: a new name is no change to them.
CREATE TRIGGER persons_change_ins AFTER INSERT ON persons BEGIN
    INSERT INTO change_pending (kind, web_id) VALUES ('PERSON', NEW.web_id);
END;
CREATE TRIGGER persons_change_upd AFTER UPDATE ON persons
    WHEN OLD.email_verified_at IS NOT NEW.email_verified_at BEGIN
    INSERT INTO change_pending (kind, web_id) VALUES ('PERSON', OLD.web_id);
    INSERT INTO change_pending (kind, web_id) VALUES ('PERSON', NEW.web_id);
END;
CREATE TRIGGER persons_change_del AFTER DELETE ON persons BEGIN
    INSERT INTO change_pending (kind, web_id) VALUES ('PERSON', OLD.web_id);
END;
