"""`shadowgate serve`: its data-plane processes, supervised children and process plumbing."""
