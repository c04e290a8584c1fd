"""Small helpers shared by every app, with no business logic of their own."""
