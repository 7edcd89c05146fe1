#!/bin/sh
# Start Streamlit (8501) and, in dual or static-only mode, Nginx (80).
set -e
MODE="${STX_SERVE_MODE:-dual}"
cd "/app/${FOLDER:-.}"
if [ "$MODE" = "static-only" ]; then exec nginx -g 'daemon off;'; fi
if [ "$MODE" = "streamlit-only" ]; then
    exec uv run streamlit run book.py --server.port 8501 --server.address 0.0.0.0
fi
uv run streamlit run book.py --server.port 8501 --server.address 127.0.0.1 &
exec nginx -g 'daemon off;'
