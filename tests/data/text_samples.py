"""A few lines of a play in tinyshakespeare's layout, shared by the text data sets' tests."""

from pathlib import Path

SHAKESPEARE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tinyshakespeare"

PLAY = """ROMEO:
But soft, what light through yonder window breaks?
It is the east, and Juliet is the sun.

JULIET:
O Romeo, Romeo, wherefore art thou Romeo?

ROMEO:
Shall I hear more, or shall I speak at this?

NURSE:
Madam!

ROMEO:
I take thee at thy word.
"""
