"""Bulk imports from association and MLS files: members, listings, lockboxes, regions."""
