"""Greenpath: Jiaozuo green low-carbon transition simulator."""
