"""The figures the callbacks' `plot()` return: displayable where the user displays figures, headless anywhere."""


def new_figure(figsize):
    """A pyplot figure, so that `plt.show()` in a script and a notebook's output show it, as fastai's and Keras
    users expect (a bare `matplotlib.figure.Figure` is shown by neither). Headless-safe: without a display,
    pyplot falls back to the Agg backend. Files the trainer writes are drawn on bare figures instead, which
    pyplot does not keep."""
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize)
