# DIST, paper row "Faster R-CNN R50-FPN <- Cascade Mask R-CNN X101-64x4d-FPN" (COCO box AP 38.4 -> 40.4).
# Student, data and schedule: the baseline config faster-rcnn_r50_fpn_2x_coco.py (mmdet's Faster R-CNN
# R50-FPN, the paper's 2x schedule pinned there: 8 GPUs x 2 images, SGD lr 0.02), ImageNet
# (torchvision) backbone. Teacher: Cascade Mask R-CNN X101-64x4d-FPN 20e (45.6 box AP); its first
# cascade stage runs on the student's sampled RoIs and DIST (beta = gamma = tau = 1, weight 1)
# matches the two fc_cls outputs (81-way softmax incl. background). See detection/README.md.
# Another method of the project's KD registry: change method (e.g. method='kd', tau=4.0) in
# distill_losses (detection/README.md, "Other KD methods").
_base_ = ['./faster-rcnn_r50_fpn_2x_coco.py']
custom_imports = dict(imports=['detection.plugin'], allow_failed_imports=False)

# Local weight files (nothing is downloaded at run time; detection/README.md says where to get them).
teacher_ckpt = 'checkpoints/cascade_mask_rcnn_x101_64x4d_fpn_20e_coco_20200512_161033-bdb5126a.pth'

student = _base_.model  # its backbone: checkpoints/resnet50-0676ba61.pth (torchvision ResNet-50)

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='TeacherOnStudentRoIsDistill',
    architecture=student,
    teacher=dict(cfg_path='mmdet::cascade_rcnn/cascade-mask-rcnn_x101-64x4d_fpn_20e_coco.py', pretrained=False),
    teacher_ckpt=teacher_ckpt,
    teacher_roi_stage=0,
    rois_recorder='rois',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            rois=dict(type='ModuleInputs', source='roi_head.bbox_roi_extractor'),
            cls=dict(type='ModuleOutputs', source='roi_head.bbox_head.fc_cls')),
        teacher_recorders=dict(
            cls=dict(type='ModuleOutputs', source='roi_head.bbox_head.0.fc_cls')),
        distill_losses=dict(
            loss_dist_cls=dict(type='KDLoss', method='dist', beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0)),
        loss_forward_mappings=dict(
            loss_dist_cls=dict(
                preds_S=dict(from_student=True, recorder='cls'),
                preds_T=dict(from_student=False, recorder='cls')))))

find_unused_parameters = True
# Checkpoints hold the teacher too (for resuming); keep the last 3. At the end the student alone is
# saved as WORK_DIR/student_final.pth, a plain mmdet checkpoint.
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
custom_hooks = [dict(type='StudentCheckpointHook')]
