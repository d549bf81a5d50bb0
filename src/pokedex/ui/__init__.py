"""The web UI: a Streamlit app that talks to the Pokédex API over HTTP only (never torch)."""
