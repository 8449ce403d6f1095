-- 045: AXE bindings, X plus an extension (issue #10 item 1).
--
-- An AXE binding ties B (and optionally A) to X with an extension the caller keys after dialling X.
-- The invariant, stated in src/domain/binding-rules.ts (reuseClash, extensionMember): an extension is
-- unique on its X among active bindings. It is held here by the same primary key as the numbers: an
-- AXE binding writes the member (x, '#<extension>') into binding_members, so a second active binding
-- with that extension on that X cannot be written; the XB trigger of 002 keeps an XB's X free of them.
-- With A set it also writes (x, B): B dialling X reaches A by the caller pair, as in AXB.
ALTER TABLE bindings
  MODIFY COLUMN kind ENUM('axb','xb','callback','axe') NOT NULL,
  ADD COLUMN extension VARCHAR(6) CHARACTER SET ascii COLLATE ascii_bin NULL AFTER b,
  ADD CONSTRAINT chk_bindings_extension CHECK ((kind = 'axe') = (extension IS NOT NULL) AND (extension IS NULL OR extension REGEXP '^[0-9]{3,6}$'));

ALTER TABLE cdrs MODIFY COLUMN kind ENUM('click_to_dial','axb','xb','callback','axe') NOT NULL;

-- One X takes extensions of one length (the caller is asked for exactly that many digits), so it carries up to 10^n.
CREATE TRIGGER binding_members_one_extension_length BEFORE INSERT ON binding_members FOR EACH ROW IF NEW.number LIKE '#%' AND EXISTS (SELECT 1 FROM binding_members m WHERE m.x = NEW.x AND m.number LIKE '#%' AND CHAR_LENGTH(m.number) <> CHAR_LENGTH(NEW.number) AND m.binding_id <> NEW.binding_id) THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'binding_conflict: an X takes extensions of one length'; END IF;

-- The tenant's extension length (3-6 digits); a tenant without a row has the default (4).
CREATE TABLE tenant_axe_settings (
  tenant_id         VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  extension_length  TINYINT      NOT NULL,
  updated_at        DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (tenant_id),
  CONSTRAINT chk_axe_extension_length CHECK (extension_length BETWEEN 3 AND 6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
