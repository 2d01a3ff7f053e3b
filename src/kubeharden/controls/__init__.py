"""Controls, one module per guidance section. Every module here is imported by the catalog."""
