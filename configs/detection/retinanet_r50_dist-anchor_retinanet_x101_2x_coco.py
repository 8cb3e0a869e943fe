# Not a paper row: this project's alternative RetinaNet DIST, for comparison with the paper's
# (retinanet_r50_dist_retinanet_x101_2x_coco.py, which this config inherits unchanged otherwise).
# Each anchor's 80 sigmoid logits plus a background logit fixed at 0 form an 81-way softmax
# distribution, and every anchor is a DIST sample (method 'dist_anchor' of the KD registry,
# registered by detection/losses.py).
# detection/README.md compares the two losses on the same outputs.
_base_ = ['./retinanet_r50_dist_retinanet_x101_2x_coco.py']

fpn_levels = 5
model = dict(
    distiller=dict(
        distill_losses={
            f'loss_dist_cls_fpn{i}': dict(
                _delete_=True, type='KDLoss', method='dist_anchor', num_classes=80, background=True,
                beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0) for i in range(fpn_levels)}))
