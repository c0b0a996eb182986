"""BPTT Explorer: the router. Page config, navigation, the shared sidebar; pages show (docs/design.md).

One body, two ways in: the checkout's ``app.py`` calls :func:`main` (``streamlit run app.py``), and
``bptt-explorer`` (:mod:`dashboard.serve`) has Streamlit run this file itself from an installed
copy, whose page scripts lie beside it in ``dashboard/pages/`` as the checkout's lie beside app.py.
"""

import streamlit as st

from dashboard.allocator import freeze_new_imports, tune_for_server
from dashboard.page_table import PAGE_CONFIG, make_pages
from dashboard.transport import send_without_delay


def main() -> None:
    """One rerun: Streamlit runs the script that calls this for every interaction."""
    tune_for_server()  # once per process: memory stays flat while many sessions compute (see the module)
    send_without_delay()  # once per process: Nagle's algorithm had held each rerun's messages (see the module)

    st.set_page_config(**PAGE_CONFIG)
    # Navigation first, before the heavier imports: it is what tells Streamlit to ignore the plain pages/ folder.
    nav = st.navigation(make_pages())

    # Local for start-up time: these pull in plotly, pandas and the settings widgets, after navigation.
    from dashboard.compute import forget_idle_cache_locks
    from dashboard.layout import draw_sidebar
    from dashboard.settings import follow_preset

    follow_preset()
    draw_sidebar()
    forget_idle_cache_locks()  # Streamlit's caches would keep one lock per setting ever computed
    nav.run()
    freeze_new_imports()  # Streamlit collects garbage after every rerun: keep the libraries out of that pass


if __name__ == "__main__":  # Streamlit runs a script as __main__: the installed router (bptt-explorer)
    main()
