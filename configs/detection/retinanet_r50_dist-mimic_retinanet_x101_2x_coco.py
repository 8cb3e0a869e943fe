# DIST + mimic, paper row "RetinaNet R50 <- RetinaNet X101-64x4d" (37.4 -> 40.1 box AP): the DIST
# config plus an MSE feature imitation on the 5 FPN levels (both 256 channels; weight 1.0 with mean
# reduction is this project's choice, the paper does not give it).
_base_ = ['./retinanet_r50_dist_retinanet_x101_2x_coco.py']

model = dict(
    distiller=dict(
        student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        distill_losses={
            f'loss_mimic_fpn{i}': dict(type='mmdet.MSELoss', loss_weight=1.0) for i in range(5)},
        loss_forward_mappings={
            f'loss_mimic_fpn{i}': dict(
                pred=dict(from_student=True, recorder='fpn', data_idx=i),
                target=dict(from_student=False, recorder='fpn', data_idx=i)) for i in range(5)}))
