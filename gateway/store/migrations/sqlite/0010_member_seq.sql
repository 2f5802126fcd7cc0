-- A user member's own seq beside its membership: a list page of users in insertion order covers a
-- narrow seq range, and its users' groups are then one range read of this index instead of one
-- probe per user into group_members_member (random UUIDs). Written by every insert of a membership
-- (a user's seq never changes, and its memberships are deleted with it); NULL for a Group member.
ALTER TABLE group_members ADD COLUMN member_seq INTEGER;
UPDATE group_members SET member_seq = (
    SELECT u.seq FROM users u WHERE u.tenant_id = group_members.tenant_id AND u.id = group_members.member_id
) WHERE member_type = 'User';
CREATE INDEX group_members_member_seq ON group_members(tenant_id, member_seq);
