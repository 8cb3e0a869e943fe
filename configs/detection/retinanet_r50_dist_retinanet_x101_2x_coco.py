# DIST, paper row "RetinaNet R50 <- RetinaNet X101-64x4d" (COCO box AP 37.4 -> 39.8).
# Student, data and schedule: the baseline config retinanet_r50_fpn_2x_coco.py (mmdet's RetinaNet
# R50-FPN, the paper's 2x schedule pinned there: 8 GPUs x 2 images, SGD lr 0.01), ImageNet
# (torchvision) backbone. Teacher: RetinaNet X101-64x4d-FPN 1x (41.0 box AP).
# DIST as the paper ran it (use_sigmoid=True, beta = gamma = 1, weight 1, no temperature), one loss
# per FPN level on the raw retina_cls output (N, 9 anchors x 80 classes = 720, H, W): an element-wise
# sigmoid, every position a row of 720 scores (inter-class), every one of the 720 channels correlated
# over the positions (intra-class): method 'dist_sigmoid' of the KD registry (detection/losses.py); the
# per-anchor softmax alternative is method='dist_anchor' (detection/README.md).
_base_ = ['./retinanet_r50_fpn_2x_coco.py']
custom_imports = dict(imports=['detection.plugin'], allow_failed_imports=False)

teacher_ckpt = 'checkpoints/retinanet_x101_64x4d_fpn_1x_coco_20200130-366f5af1.pth'

fpn_levels = 5
student = _base_.model  # its backbone: checkpoints/resnet50-0676ba61.pth (torchvision ResNet-50)

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='LocalTeacherDistill',
    architecture=student,
    teacher=dict(cfg_path='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py', pretrained=False),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='ConfigurableDistiller',
        # retina_cls runs once per FPN level: record i of the recorder is level i (P3..P7).
        student_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.retina_cls')),
        teacher_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.retina_cls')),
        distill_losses={
            f'loss_dist_cls_fpn{i}': dict(
                type='KDLoss', method='dist_sigmoid', beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0)
            for i in range(fpn_levels)},
        loss_forward_mappings={
            f'loss_dist_cls_fpn{i}': dict(
                preds_S=dict(from_student=True, recorder='cls', record_idx=i),
                preds_T=dict(from_student=False, recorder='cls', record_idx=i)) for i in range(fpn_levels)}))

find_unused_parameters = True
# Checkpoints hold the teacher too (for resuming); keep the last 3. At the end the student alone is
# saved as WORK_DIR/student_final.pth, a plain mmdet checkpoint.
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
custom_hooks = [dict(type='StudentCheckpointHook')]
