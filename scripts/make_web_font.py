"""Write the browser's CJK subset font (greenpath/app/webfont.py says why and what).

python scripts/make_web_font.py
"""

from greenpath.app import webfont

if __name__ == "__main__":
    n, size = webfont.make()
    webfont.write_config()
    print(f"{webfont.SUBSET.relative_to(webfont.ROOT)}: {n} code points asked for, "
          f"{len(webfont.covered())} mapped, {size / 1024:.0f} kB; unicodeRange of both faces "
          f"written to {webfont.CONFIG.relative_to(webfont.ROOT)}")
