"""Greenpath scenario simulator for Jiaozuo (焦作市绿色低碳转型情景模拟): the Streamlit app.

Run ``streamlit run app.py``; the pages live in :mod:`greenpath.app.ui`.
"""

from greenpath.app.ui import main

main()
