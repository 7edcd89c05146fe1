"""hello-course: a tiny StreamTeX-style course, the example app of stx-pulumi."""

import streamlit as st

st.set_page_config(page_title="Hello, course", page_icon="📘")
st.title("Hello, course")
st.write("This page is served by Streamlit behind Nginx on Cloud Run.")
st.markdown("The same content, exported as static HTML, is under [/html/](/html/).")
