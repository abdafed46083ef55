"""Public pages reached from emails (password reset), server-rendered."""
