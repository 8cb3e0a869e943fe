"""COCO detection (mmdet + mmrazor) and mmseg plugin for the project's DIST loss.

``import detection`` needs no OpenMMLab package. ``import detection.plugin`` (done by the configs'
``custom_imports`` and by ``tools/train_mmdet.py``) applies the torch-2.14 shims of
:mod:`detection.compat` and registers the losses, algorithms and hook in mmrazor / mmengine.
Install the stack with ``sh tools/install_openmmlab.sh``; see ``detection/README.md``.
"""
