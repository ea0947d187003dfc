"""Publishing a form version: diff it into a plan, check the data, apply DDL."""
