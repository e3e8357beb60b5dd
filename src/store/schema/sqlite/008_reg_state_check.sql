-- 008_reg_state_check: impu.reg_state's CHECK without an IN list (SQLite
-- only; PostgreSQL's IN check costs nothing and stays).
--
-- SQLite evaluates CHECK (reg_state IN (0, 1, 2)) on every UPDATE of
-- reg_state by building a temporary B-tree of the three values (a pager, a
-- page cache and a zeroed page, opened and closed each time): the SAR's
-- state update cost about 48 000 instructions, 19 000 with the OR form
-- below (a prepared-statement loop under callgrind, 2026-11-29).  The two
-- forms accept the same values.
--
-- SQLite has no ALTER for a CHECK, and rebuilding impu would cascade its
-- deletion into impi_impu and sh_data.  SQLite documents editing the
-- table's text in sqlite_schema for a change of CHECK constraints the rows
-- already satisfy ("Making Other Kinds Of Table Schema Changes", the ALTER
-- TABLE page); the CREATE and DROP after it move the schema cookie, so
-- every other connection reads the schema again.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql, 'CHECK (reg_state IN (0, 1, 2))',
                     'CHECK (reg_state = 0 OR reg_state = 1 OR reg_state = 2)')
 WHERE type = 'table' AND name = 'impu';
PRAGMA writable_schema = OFF;
CREATE TABLE reg_state_check_cookie (x INTEGER);
DROP TABLE reg_state_check_cookie;
