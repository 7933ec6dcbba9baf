"""aigw's transport layers: each wraps an inner transport and adds one concern."""
