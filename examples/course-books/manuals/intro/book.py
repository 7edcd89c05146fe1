"""The intro manual of Physics 101 (a StreamTeX book)."""

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from shared_blocks import course_title

st.title(f"{course_title()}: intro")
