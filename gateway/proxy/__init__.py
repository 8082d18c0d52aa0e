"""The data plane: the user's request from socket to upstream and back."""
