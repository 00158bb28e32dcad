"""Server-rendered pages (Jinja2) and their one stylesheet: no external assets, no JavaScript
frameworks, readable without CSS."""
