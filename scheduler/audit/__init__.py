"""The audit log: who read or exported personal data, erased it, or changed roles or endpoints."""
