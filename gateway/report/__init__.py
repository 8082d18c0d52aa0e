"""`shadowgate report`: what the arms did, in tables and plots."""
