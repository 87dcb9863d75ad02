"""Access reviews: campaigns in which owners confirm or remove access."""
