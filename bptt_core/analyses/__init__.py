"""One function per analysis, from plain settings to numbers, and what each costs."""
