"""The Streamlit layer: the only package that imports streamlit. Shared frame, sidebar, cached loads, views."""
