"""Small helpers shared by every domain: time, identifiers, phone numbers, column types."""
