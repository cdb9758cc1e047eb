"""The studies' fixtures (``zs2``, ``exvideo``, ``exvideo_recipe``) come with the package:
``pytest_ablation/methods/fixtures.py``, registered as the ``ablation-methods`` plugin. A
conftest here may override any of them for these studies."""
