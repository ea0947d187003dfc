"""Records of published forms: validation, CRUD, listing, audit."""
