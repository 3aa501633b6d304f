import type { Migration } from './index.ts'

// A per-sandbox revision that every change to the sandbox's mounts bumps, in the same
// statement (a trigger), whichever replica makes it: a listing can then reuse what it built
// for the same revision instead of reading the rows again.

export const mountsRevision: Migration = {
  version: 2,
  name: 'mounts-revision',
  sqlite: `
ALTER TABLE sandboxes ADD COLUMN mounts_rev INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER mounts_rev_insert AFTER INSERT ON mounts BEGIN
  UPDATE sandboxes SET mounts_rev = mounts_rev + 1 WHERE id = NEW.sandbox_id;
END;
CREATE TRIGGER mounts_rev_update AFTER UPDATE ON mounts BEGIN
  UPDATE sandboxes SET mounts_rev = mounts_rev + 1 WHERE id = NEW.sandbox_id;
END;
CREATE TRIGGER mounts_rev_delete AFTER DELETE ON mounts BEGIN
  UPDATE sandboxes SET mounts_rev = mounts_rev + 1 WHERE id = OLD.sandbox_id;
END;
`,
  postgres: `
ALTER TABLE sandboxes ADD COLUMN mounts_rev INTEGER NOT NULL DEFAULT 0;
CREATE FUNCTION bump_mounts_rev() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    UPDATE sandboxes SET mounts_rev = mounts_rev + 1 WHERE id = OLD.sandbox_id;
  ELSE
    UPDATE sandboxes SET mounts_rev = mounts_rev + 1 WHERE id = NEW.sandbox_id;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER mounts_rev AFTER INSERT OR UPDATE OR DELETE ON mounts FOR EACH ROW EXECUTE FUNCTION bump_mounts_rev();
`
}
