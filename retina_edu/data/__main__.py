"""``python -m retina_edu.data``: (re)make the synthetic data set."""

from retina_edu.data.synthetic import main

main()
