-- Substring filters (co, sw, ew) on userName, displayName, externalId and emails.value, and on a
-- group's displayName and externalId, are narrowed by FTS5 trigram indexes; the exact predicate still
-- decides (gateway/core/substring.py). The indexed text is the stored column as is (the *_ci columns
-- are already case-folded by Python, externalId is caseExact), hence case_sensitive 1. One index per
-- attribute, so a trigram's posting list holds only that attribute's occurrences (a shared index
-- would make every userName query wade through the externalIds' digits too). One row per resource,
-- rowid = its seq, kept in step by triggers, i.e. inside the very transaction of every write, whoever
-- makes it. A user's emails are one text, one address per line: a trigram spanning two addresses can
-- only add candidates, which the exact predicate then rejects.
CREATE VIRTUAL TABLE user_name_search USING fts5(t, tokenize = 'trigram case_sensitive 1');
CREATE VIRTUAL TABLE user_display_search USING fts5(t, tokenize = 'trigram case_sensitive 1');
CREATE VIRTUAL TABLE user_external_search USING fts5(t, tokenize = 'trigram case_sensitive 1');
CREATE VIRTUAL TABLE user_email_search USING fts5(t, tokenize = 'trigram case_sensitive 1');
INSERT INTO user_name_search (rowid, t) SELECT seq, user_name_ci FROM users;
INSERT INTO user_display_search (rowid, t) SELECT seq, display_name_ci FROM users WHERE display_name_ci IS NOT NULL;
INSERT INTO user_external_search (rowid, t) SELECT seq, external_id FROM users WHERE external_id IS NOT NULL;
INSERT INTO user_email_search (rowid, t)
SELECT u.seq, group_concat(e.value_ci, char(10))
FROM users u JOIN user_emails e ON e.tenant_id = u.tenant_id AND e.user_id = u.id GROUP BY u.seq;

-- Emails are normally written after their user (a foreign key); a bulk load that writes them first is
-- picked up by the insert trigger too.
CREATE TRIGGER user_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO user_name_search (rowid, t) VALUES (new.seq, new.user_name_ci);
    INSERT INTO user_display_search (rowid, t) SELECT new.seq, new.display_name_ci WHERE new.display_name_ci IS NOT NULL;
    INSERT INTO user_external_search (rowid, t) SELECT new.seq, new.external_id WHERE new.external_id IS NOT NULL;
    INSERT INTO user_email_search (rowid, t)
    SELECT new.seq, x.t FROM (SELECT group_concat(e.value_ci, char(10)) AS t FROM user_emails e
                              WHERE e.tenant_id = new.tenant_id AND e.user_id = new.id) x
    WHERE x.t IS NOT NULL;
END;
CREATE TRIGGER user_search_update_name AFTER UPDATE OF user_name_ci ON users
WHEN old.user_name_ci IS NOT new.user_name_ci BEGIN
    UPDATE user_name_search SET t = new.user_name_ci WHERE rowid = new.seq;
END;
CREATE TRIGGER user_search_update_display AFTER UPDATE OF display_name_ci ON users
WHEN old.display_name_ci IS NOT new.display_name_ci BEGIN
    DELETE FROM user_display_search WHERE rowid = new.seq;
    INSERT INTO user_display_search (rowid, t) SELECT new.seq, new.display_name_ci WHERE new.display_name_ci IS NOT NULL;
END;
CREATE TRIGGER user_search_update_external AFTER UPDATE OF external_id ON users
WHEN old.external_id IS NOT new.external_id BEGIN
    DELETE FROM user_external_search WHERE rowid = new.seq;
    INSERT INTO user_external_search (rowid, t) SELECT new.seq, new.external_id WHERE new.external_id IS NOT NULL;
END;
CREATE TRIGGER user_search_delete AFTER DELETE ON users BEGIN
    DELETE FROM user_name_search WHERE rowid = old.seq;
    DELETE FROM user_display_search WHERE rowid = old.seq;
    DELETE FROM user_external_search WHERE rowid = old.seq;
    DELETE FROM user_email_search WHERE rowid = old.seq;
END;
-- Any change to a user's email rows rewrites that user's one email text.
CREATE TRIGGER user_search_email_insert AFTER INSERT ON user_emails BEGIN
    DELETE FROM user_email_search
    WHERE rowid = (SELECT u.seq FROM users u WHERE u.tenant_id = new.tenant_id AND u.id = new.user_id);
    INSERT INTO user_email_search (rowid, t)
    SELECT u.seq, (SELECT group_concat(e.value_ci, char(10)) FROM user_emails e
                   WHERE e.tenant_id = u.tenant_id AND e.user_id = u.id)
    FROM users u WHERE u.tenant_id = new.tenant_id AND u.id = new.user_id;
END;
CREATE TRIGGER user_search_email_delete AFTER DELETE ON user_emails BEGIN
    DELETE FROM user_email_search
    WHERE rowid = (SELECT u.seq FROM users u WHERE u.tenant_id = old.tenant_id AND u.id = old.user_id);
    INSERT INTO user_email_search (rowid, t)
    SELECT u.seq, x.t FROM users u,
        (SELECT group_concat(e.value_ci, char(10)) AS t FROM user_emails e
         WHERE e.tenant_id = old.tenant_id AND e.user_id = old.user_id) x
    WHERE u.tenant_id = old.tenant_id AND u.id = old.user_id AND x.t IS NOT NULL;
END;

CREATE VIRTUAL TABLE group_display_search USING fts5(t, tokenize = 'trigram case_sensitive 1');
CREATE VIRTUAL TABLE group_external_search USING fts5(t, tokenize = 'trigram case_sensitive 1');
INSERT INTO group_display_search (rowid, t) SELECT seq, display_name_ci FROM groups;
INSERT INTO group_external_search (rowid, t) SELECT seq, external_id FROM groups WHERE external_id IS NOT NULL;
CREATE TRIGGER group_search_insert AFTER INSERT ON groups BEGIN
    INSERT INTO group_display_search (rowid, t) VALUES (new.seq, new.display_name_ci);
    INSERT INTO group_external_search (rowid, t) SELECT new.seq, new.external_id WHERE new.external_id IS NOT NULL;
END;
CREATE TRIGGER group_search_update_display AFTER UPDATE OF display_name_ci ON groups
WHEN old.display_name_ci IS NOT new.display_name_ci BEGIN
    UPDATE group_display_search SET t = new.display_name_ci WHERE rowid = new.seq;
END;
CREATE TRIGGER group_search_update_external AFTER UPDATE OF external_id ON groups
WHEN old.external_id IS NOT new.external_id BEGIN
    DELETE FROM group_external_search WHERE rowid = new.seq;
    INSERT INTO group_external_search (rowid, t) SELECT new.seq, new.external_id WHERE new.external_id IS NOT NULL;
END;
CREATE TRIGGER group_search_delete AFTER DELETE ON groups BEGIN
    DELETE FROM group_display_search WHERE rowid = old.seq;
    DELETE FROM group_external_search WHERE rowid = old.seq;
END;
