# DIST + mimic, paper row "Faster R-CNN R50-FPN <- Cascade Mask R-CNN X101" (38.4 -> 41.8 box AP):
# the DIST config plus an MSE feature imitation on the 5 FPN levels (student and teacher FPNs both
# have 256 channels, so no adapter). The paper does not give the mimic weight; 1.0 with mean
# reduction is this project's choice.
_base_ = ['./faster-rcnn_r50_dist_cascade-mask-rcnn_x101_2x_coco.py']

fpn_levels = 5
model = dict(
    distiller=dict(
        student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        distill_losses={
            f'loss_mimic_fpn{i}': dict(type='mmdet.MSELoss', loss_weight=1.0) for i in range(fpn_levels)},
        loss_forward_mappings={
            f'loss_mimic_fpn{i}': dict(
                pred=dict(from_student=True, recorder='fpn', data_idx=i),
                target=dict(from_student=False, recorder='fpn', data_idx=i)) for i in range(fpn_levels)}))
