"""The homography of the unit square onto a quad, in closed form (Heckbert, Fundamentals of Texture
Mapping, 1989). One formula for the scene generator (numpy, one quad at a time) and the rectifier
(torch, a batch of quads): elementwise arithmetic only, so it works on floats, numpy arrays and
torch tensors alike, and costs a few vector operations instead of a batched 8x8 least-squares
solve.
"""


def square_to_quad_coefficients(x0, y0, x1, y1, x2, y2, x3, y3):
    """(a, b, c, d, e, f, g, h) of H = [[a, b, c], [d, e, f], [g, h, 1]], which maps the unit
    square's corners (0, 0), (1, 0), (1, 1), (0, 1) onto (x0, y0), (x1, y1), (x2, y2), (x3, y3).

    A degenerate quad (the last three corners on one line) has no homography: its denominator is
    0 and is replaced by 1e-30, which keeps all-equal corners (an untrained localizer's) finite,
    every point mapped onto theirs; the rectifier clamps what other degenerate quads give.
    """
    sx, sy = x0 - x1 + x2 - x3, y0 - y1 + y2 - y3
    dx1, dx2, dy1, dy2 = x1 - x2, x3 - x2, y1 - y2, y3 - y2
    den = dx1 * dy2 - dx2 * dy1
    den = den + (den == 0) * 1e-30  # not 1e-300: a torch bool times a float is float32 first
    g = (sx * dy2 - dx2 * sy) / den
    h = (dx1 * sy - sx * dy1) / den
    return x1 - x0 + g * x1, x3 - x0 + h * x3, x0, y1 - y0 + g * y1, y3 - y0 + h * y3, y0, g, h
