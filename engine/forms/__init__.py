"""Form definitions: keys, field types, the meta-schema and parsing."""
