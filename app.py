"""BPTT Explorer: ``streamlit run app.py`` in the checkout. The router's body is
:func:`dashboard.router.main` (which ``bptt-explorer`` runs from an installed copy); the page
scripts are in pages/ beside this file (docs/design.md)."""

from dashboard.router import main

main()
