"""Views: widgets that lay out what the core computed and report what the user picks."""
