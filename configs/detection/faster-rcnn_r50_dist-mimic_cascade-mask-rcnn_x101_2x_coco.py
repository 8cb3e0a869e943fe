# DIST + mimic, paper row "Faster R-CNN R50-FPN <- Cascade Mask R-CNN X101" (38.4 -> 41.8 box AP):
# the DIST config plus the feature imitation on the 5 FPN levels.
_base_ = ['./faster-rcnn_r50_dist_cascade-mask-rcnn_x101_2x_coco.py']

# "+mimic" as the paper ran it: MSE (mean over elements, weight 1) between the teacher's FPN output and
# the student's passed through a learnable 1x1 conv (256 -> 256, with bias, PyTorch's default init), one
# per level. The aligners are mmrazor connectors of the distiller: the optimizer trains them with the
# student and the distillation checkpoints (epoch_*.pth) hold them; student_final.pth and
# tools/test_mmdet.py keep only the student.
fpn_levels = 5
model = dict(
    distiller=dict(
        student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        connectors={
            f'fpn{i}_aligner': dict(
                type='TorchNNConnector', module_name='Conv2d',
                module_args=dict(in_channels=256, out_channels=256, kernel_size=1)) for i in range(fpn_levels)},
        distill_losses={
            f'loss_mimic_fpn{i}': dict(type='mmdet.MSELoss', loss_weight=1.0) for i in range(fpn_levels)},
        loss_forward_mappings={
            f'loss_mimic_fpn{i}': dict(
                pred=dict(from_student=True, recorder='fpn', data_idx=i, connector=f'fpn{i}_aligner'),
                target=dict(from_student=False, recorder='fpn', data_idx=i)) for i in range(fpn_levels)}))
